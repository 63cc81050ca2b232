"""Load: read a plan in any form (saved binary, show -json, plan -json stream), its addresses, and Terraform."""
