"""Where the AWS App Mesh envoy image (and the X-Ray daemon sidecar) comes from, per region.

Source: the AWS App Mesh User Guide, "Envoy image"
(https://docs.aws.amazon.com/app-mesh/latest/userguide/envoy.html), which lists the standard image
``840364872350.dkr.ecr.<region>.amazonaws.com/aws-appmesh-envoy:v1.34.13.0-prod`` for every supported
Region except me-south-1, ap-east-1, ap-southeast-3, eu-south-1, il-central-1 and af-south-1, each of
which has its own registry account, and the public copy ``public.ecr.aws/appmesh/aws-appmesh-envoy``.
The same page names the repository ARN to allow for ECR pulls, e.g.
``arn:aws:ecr:us-west-2:840364872350:repository/aws-appmesh-envoy``.

The accounts of the China Regions (``amazonaws.com.cn``, partition ``aws-cn``) and of eu-south-2 and
eu-central-2 are not on that page; they come from the App Mesh team's image release notes
(github.com/aws/aws-app-mesh-roadmap, e.g. issue #509 "Release Envoy v1.34.13", which released
this same version in every Region below); the China ones also match the China-Regions user guide
(https://docs.amazonaws.cn/app-mesh/latest/userguide/envoy.html) and the AWS CDK's region facts.

The X-Ray daemon: "Running the X-Ray daemon on Amazon ECS" (AWS X-Ray Developer Guide,
https://docs.aws.amazon.com/xray/latest/devguide/xray-daemon-ecs.html) points to the official image in
the Amazon ECR Public Gallery, ``public.ecr.aws/xray/aws-xray-daemon``.
"""

from __future__ import annotations

from typing import Final

ENVOY_VERSION: Final[str] = "v1.34.13.0-prod"
"""The pinned App Mesh envoy tag: the newest one the user guide documents."""

ENVOY_REPOSITORY: Final[str] = "aws-appmesh-envoy"
DEFAULT_ACCOUNT: Final[str] = "840364872350"
"""The registry account of every Region not in ``REGION_ACCOUNTS``."""

REGION_ACCOUNTS: Final[dict[str, str]] = {
    "af-south-1": "924023996002",
    "ap-east-1": "856666278305",
    "ap-southeast-3": "909464085924",
    "eu-south-1": "422531588944",
    "il-central-1": "564877687649",
    "me-south-1": "772975370895",
    # Not on the user guide page; from the App Mesh image release notes (see the module docstring).
    "eu-central-2": "704106688930",
    "eu-south-2": "992897592190",
    "cn-north-1": "919366029133",
    "cn-northwest-1": "919830735681",
}
"""Regions whose envoy image lives in a registry account other than ``DEFAULT_ACCOUNT``."""

PUBLIC_ENVOY_IMAGE: Final[str] = f"public.ecr.aws/appmesh/{ENVOY_REPOSITORY}:{ENVOY_VERSION}"
"""The same image in the Amazon ECR Public Gallery (no IAM needed to pull it, but rate-limited)."""

XRAY_DAEMON_IMAGE: Final[str] = "public.ecr.aws/xray/aws-xray-daemon:3.x"
"""The official X-Ray daemon image, for the ``Tracing: XRay`` sidecar, pinned to its major version."""


def partition(region: str) -> str:
    """The ARN partition of ``region``: ``aws-cn`` for the China Regions, ``aws-us-gov`` for GovCloud."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def dns_suffix(region: str) -> str:
    """The domain of the Region's endpoints: ``amazonaws.com.cn`` in China, ``amazonaws.com`` elsewhere."""
    return "amazonaws.com.cn" if partition(region) == "aws-cn" else "amazonaws.com"


def envoy_account(region: str) -> str:
    """The account of the ECR registry that holds the envoy image in ``region``."""
    return REGION_ACCOUNTS.get(region, DEFAULT_ACCOUNT)


def envoy_image_uri(region: str, version: str = ENVOY_VERSION) -> str:
    """The regional envoy image: ``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/aws-appmesh-envoy:<tag>``."""
    return f"{envoy_account(region)}.dkr.ecr.{region}.{dns_suffix(region)}/{ENVOY_REPOSITORY}:{version}"


def envoy_repository_arn(region: str) -> str:
    """The ARN of the envoy image's ECR repository in ``region``: the resource of the ECR pull rights."""
    return f"arn:{partition(region)}:ecr:{region}:{envoy_account(region)}:repository/{ENVOY_REPOSITORY}"
