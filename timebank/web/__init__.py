"""The members' web front: static files served by the service itself at `/`."""
