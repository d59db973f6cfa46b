"""The Smartcar v2.0 wire-compatible vehicle API (`/v2.0/...`) and management API (`/v2.0/management/...`)."""
