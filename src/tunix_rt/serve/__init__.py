"""`tunix-rt serve`: a local, read-only web dashboard over a folder of run directories."""
