"""wfm-forecast: the shared package behind the numbered pipeline steps."""
