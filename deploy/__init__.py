"""Deployment: `deploy.local` (the local services and `make run`) is a package; `deploy/docker`,
`deploy/k8s` and `deploy/kibana` hold files and scripts run by path."""
