"""tfgate: a Terraform plan gatekeeper."""

__version__ = "0.1.0"
