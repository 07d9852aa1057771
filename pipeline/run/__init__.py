"""`photoedit run`: the stage runner, the stages, the figures they leave and report.html."""
