"""Backends render a plan: App Mesh (``appmesh``) and ECS Service Connect (``serviceconnect``)."""
