"""The few Kubernetes API calls the operator makes besides kopf's own: read a Secret, write a
ConfigMap."""

import base64
import json
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException


async def load_credentials() -> None:
    """In-cluster service account, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config()


async def read_secret_value(namespace: str, name: str, key: str) -> str:
    async with client.ApiClient() as api:
        secret = await client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    data = secret.data or {}
    if key not in data:
        raise KeyError(f"secret {namespace}/{name} has no key {key}")
    return base64.b64decode(data[key]).decode()


async def write_config_map(
    namespace: str, name: str, owner: dict[str, Any], data: dict[str, Any]
) -> None:
    """Writes read-policy.json into the ConfigMap, owned by the resource (so it goes when that
    goes). A patch, not a replace: the ConfigMap may be the Helm chart's (whose Role allows
    updating that one but creating none), and its labels and annotations stay as they are."""
    owner_references = [client.V1OwnerReference(**owner)]
    contents = {"read-policy.json": json.dumps(data, indent=2, sort_keys=True)}
    async with client.ApiClient() as api:
        core = client.CoreV1Api(api)
        try:
            await core.patch_namespaced_config_map(
                name,
                namespace,
                client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(owner_references=owner_references),
                    data=contents,
                ),
            )
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=name,
                    namespace=namespace,
                    labels={"app.kubernetes.io/managed-by": "botsmith-operator"},
                    owner_references=owner_references,
                ),
                data=contents,
            )
            await core.create_namespaced_config_map(namespace, body)
