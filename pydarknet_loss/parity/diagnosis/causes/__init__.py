"""One module per cause: its ``CAUSE`` (code, what the implementation did,
how it is recognised, the parts it may claim, the stage it runs at) and,
for decisions, its model.  Modules starting with ``_`` hold what several
causes share."""
