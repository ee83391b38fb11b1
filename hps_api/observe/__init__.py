"""What hps-api tells its operators about itself while it runs: the event log."""
