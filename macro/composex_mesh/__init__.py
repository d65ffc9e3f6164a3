"""ComposeXMesh: expand a compact ``Composex::AppMesh`` section into App Mesh or ECS Service Connect."""

__version__ = "0.1.0"

SECTION_KEY = "Composex::AppMesh"
MACRO_NAME = "ComposeXMesh"
