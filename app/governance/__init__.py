"""Data governance: conversations deleted after a bot's retention period, expired records
cleaned, and erasure on request of one visitor's data or of a whole account."""
