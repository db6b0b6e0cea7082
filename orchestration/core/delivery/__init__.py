"""The messaging gateway: the only code that reads contact details and talks to providers."""
