"""Deploy over SSH: transport (ssh.py), device layout and agent (device.py, agent.py), the deploy steps (deploy.py)."""
