"""The boot flow: host states, the decision, allocation."""
