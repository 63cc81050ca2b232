"""Forges: pull/merge-request comments and commit statuses."""
