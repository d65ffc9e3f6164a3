"""The regional envoy image and its ECR repository ARN (App Mesh User Guide, "Envoy image")."""

from __future__ import annotations

import re

import pytest

from composex_mesh.envoy_images import (
    DEFAULT_ACCOUNT,
    ENVOY_VERSION,
    PUBLIC_ENVOY_IMAGE,
    REGION_ACCOUNTS,
    XRAY_DAEMON_IMAGE,
    envoy_image_uri,
    envoy_repository_arn,
)


def test_pinned_version_is_a_prod_tag() -> None:
    assert re.fullmatch(r"v\d+\.\d+\.\d+\.\d+-prod", ENVOY_VERSION)


def test_default_region() -> None:
    assert DEFAULT_ACCOUNT == "840364872350"
    assert envoy_image_uri("us-west-2") == (
        f"840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy:{ENVOY_VERSION}"
    )
    # The example ARN of the user guide.
    arn = envoy_repository_arn("us-west-2")
    assert arn == "arn:aws:ecr:us-west-2:840364872350:repository/aws-appmesh-envoy"


@pytest.mark.parametrize(
    ("region", "account"),
    [
        ("me-south-1", "772975370895"),
        ("ap-east-1", "856666278305"),
        ("ap-southeast-3", "909464085924"),
        ("eu-south-1", "422531588944"),
        ("il-central-1", "564877687649"),
        ("af-south-1", "924023996002"),
    ],
)
def test_exception_regions_of_the_user_guide(region: str, account: str) -> None:
    assert REGION_ACCOUNTS[region] == account
    assert envoy_image_uri(region) == (f"{account}.dkr.ecr.{region}.amazonaws.com/aws-appmesh-envoy:{ENVOY_VERSION}")
    assert envoy_repository_arn(region) == f"arn:aws:ecr:{region}:{account}:repository/aws-appmesh-envoy"


@pytest.mark.parametrize(("region", "account"), [("cn-north-1", "919366029133"), ("cn-northwest-1", "919830735681")])
def test_china_regions(region: str, account: str) -> None:
    assert envoy_image_uri(region) == (f"{account}.dkr.ecr.{region}.amazonaws.com.cn/aws-appmesh-envoy:{ENVOY_VERSION}")
    assert envoy_repository_arn(region) == f"arn:aws-cn:ecr:{region}:{account}:repository/aws-appmesh-envoy"


def test_region_not_listed_falls_back_to_default_account() -> None:
    assert envoy_image_uri("eu-west-1").startswith("840364872350.dkr.ecr.eu-west-1.amazonaws.com/")


def test_explicit_version() -> None:
    assert envoy_image_uri("us-east-1", "v1.29.12.2-prod").endswith("/aws-appmesh-envoy:v1.29.12.2-prod")


def test_public_images() -> None:
    assert PUBLIC_ENVOY_IMAGE.startswith("public.ecr.aws/appmesh/aws-appmesh-envoy:")
    assert PUBLIC_ENVOY_IMAGE.endswith(f":{ENVOY_VERSION}")
    assert XRAY_DAEMON_IMAGE.startswith("public.ecr.aws/xray/aws-xray-daemon:")


def test_image_and_arn_agree_on_account_and_region() -> None:
    for region in [*REGION_ACCOUNTS, "us-east-1", "ap-northeast-1"]:
        image, arn = envoy_image_uri(region), envoy_repository_arn(region)
        account, _, _, image_region = image.split("/")[0].split(".")[:4]
        assert arn.split(":")[3:5] == [image_region, account]
