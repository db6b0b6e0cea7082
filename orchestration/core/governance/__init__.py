"""Governance: four-eyes approvals of what may take effect (campaign and policy versions, a
manual model promotion, lifting the kill switch), signed by configured identities."""
