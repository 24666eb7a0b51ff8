"""Test-only hooks that reach into processes a test starts (a server, a Ray cluster), so the product carries no test
switches."""
