"""Protocol-level fakes of cloud APIs that answer over real HTTP."""
