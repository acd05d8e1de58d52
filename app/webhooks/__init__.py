"""Outbound webhooks: owner endpoints, the event outbox and the signed delivery loop."""
