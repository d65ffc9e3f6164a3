"""Run ECS ComposeX's ``ecs-compose-x`` offline, for the benchmark's render comparison (not part of the tests).

    /tmp/ecx/bin/python tests/benchmarks/ecs_composex_offline.py render -n bench -f docker-compose.yml -d out

Run it with the interpreter of a throwaway virtualenv holding ECS ComposeX with its App Mesh module
(``ecs-composex==1.1.6`` and ``troposphere==4.8.3``: 1.1.8 and later ship no ``x-appmesh``, and 1.1.6 sets
task-definition properties that troposphere 4.9 removed). Before it renders, ECS ComposeX asks AWS for the
region's availability zones and the account ID, and it sends every template it writes to CloudFormation's
``ValidateTemplate``; with no network, those calls are answered here from canned responses (each answer is
noted on stderr). Everything else is ECS ComposeX's own work, so the time measured is less than a real
run's, which also waits for AWS.
"""

import os
import sys
from typing import Any

import botocore.client

os.environ.setdefault("AWS_ACCESS_KEY_ID", "offline")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "offline")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

REGION = os.environ["AWS_DEFAULT_REGION"]
CANNED: dict[str, Any] = {
    "DescribeAvailabilityZones": {
        "AvailabilityZones": [
            {"ZoneName": f"{REGION}{zone}", "ZoneId": f"az{index}", "RegionName": REGION, "State": "available"}
            for index, zone in enumerate("abc", start=1)
        ]
    },
    "GetCallerIdentity": {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/bench", "UserId": "B"},
    "ListAccountSettings": {"settings": []},
    "ValidateTemplate": {"Parameters": []},
}


def _answer(client: Any, operation_name: str, api_params: Any) -> Any:
    service = client.meta.service_model.service_name
    if operation_name not in CANNED:
        raise RuntimeError(f"offline: no canned answer for {service}:{operation_name}")
    print(f"offline: answered {service}:{operation_name}", file=sys.stderr)
    return CANNED[operation_name]


botocore.client.BaseClient._make_api_call = _answer

from ecs_composex.cli import main  # noqa: E402

sys.exit(main())
