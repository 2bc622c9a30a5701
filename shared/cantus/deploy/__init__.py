"""Checks of what ships to a cluster: the container images' Dockerfiles (``images``) and the
Kubernetes manifests in ``deploy/k8s`` (``manifests``), both run offline by ``make test``."""
