"""Settings: one typed object built at start-up, and the admin's saved sections."""
