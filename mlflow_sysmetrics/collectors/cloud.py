"""The cloud provider and instance type, from firmware (DMI) strings; never the network.

Only what the firmware says is used: AWS Nitro instances name their type in
``product_name``; other providers name themselves but not the machine size.
"""

from __future__ import annotations

from .. import tags as T
from .._context import Context

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping

DMI_FIELDS = (
    "sys_vendor",
    "product_name",
    "product_version",
    "bios_vendor",
    "bios_version",
    "board_vendor",
    "chassis_vendor",
    "chassis_asset_tag",
)

#: Azure writes this asset tag on every VM's chassis.
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
#: Asset tags that mark a cloud rather than one machine; any other is an owner's inventory
#: number, an identifier that stays out of the snapshot (as the host name does, unless asked).
CLOUD_ASSET_TAGS = frozenset({AZURE_ASSET_TAG, "OracleCloud.com", "Amazon EC2"})
#: re is imported (and compiles this) only on AWS, where an instance type is read.
_AWS_TYPE = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"


def classify(dmi: Mapping[str, str]) -> dict[str, str]:
    """``sys.cloud`` (and ``sys.instance_type`` where known) from DMI strings."""
    vendor = dmi.get("sys_vendor", "")
    product = dmi.get("product_name", "")
    bios_vendor = dmi.get("bios_vendor", "")
    bios_version = dmi.get("bios_version", "")
    asset = dmi.get("chassis_asset_tag", "")
    if "Amazon EC2" in (vendor, bios_vendor, dmi.get("board_vendor", "")):
        found = {T.CLOUD: "aws"}
        import re

        if re.match(_AWS_TYPE, product):
            found[T.INSTANCE_TYPE] = product
        return found
    if "amazon" in bios_version.lower():  # Xen-based EC2 generations
        return {T.CLOUD: "aws"}
    # GCE writes "Google Compute Engine" as the product and "Google" as the BIOS vendor; a
    # Chromebook also says sys_vendor "Google" (the kernel's own DMI quirk tables match
    # Chromebooks on it), with a board name as product and coreboot as BIOS.
    if product == "Google Compute Engine" or bios_vendor == "Google":
        return {T.CLOUD: "gcp"}
    if asset == AZURE_ASSET_TAG:
        return {T.CLOUD: "azure"}
    if asset == "OracleCloud.com":
        return {T.CLOUD: "oci"}
    if vendor == "Alibaba Cloud" or product.startswith("Alibaba Cloud"):
        return {T.CLOUD: "alibaba"}
    if vendor == "DigitalOcean":
        return {T.CLOUD: "digitalocean"}
    if vendor == "Hetzner":
        return {T.CLOUD: "hetzner"}
    if vendor == "Scaleway":
        return {T.CLOUD: "scaleway"}
    if vendor == "Tencent Cloud":
        return {T.CLOUD: "tencent"}
    if product.startswith("OpenStack") or vendor == "OpenStack Foundation":
        return {T.CLOUD: "openstack"}
    return {}


def read_dmi(ctx: Context) -> dict[str, str]:
    """The DMI strings under ``/sys/class/dmi/id`` that can be read (some need root)."""
    found = {}
    for name in DMI_FIELDS:
        value = ctx.root.read_line(f"/sys/class/dmi/id/{name}")
        if value:
            found[name] = value
    return found


def shareable(dmi: Mapping[str, str]) -> dict[str, str]:
    """The DMI strings fit for the snapshot: an asset tag only where it names a cloud."""
    return {k: v for k, v in dmi.items() if k != "chassis_asset_tag" or v in CLOUD_ASSET_TAGS}


def collect_linux(ctx: Context) -> dict[str, str]:
    """``sys.cloud`` / ``sys.instance_type`` on Linux."""
    dmi = read_dmi(ctx)
    ctx.details["dmi"] = shareable(dmi)
    return classify(dmi)


def collect_windows(ctx: Context) -> dict[str, str]:  # pragma: no cover - needs Windows
    """``sys.cloud`` / ``sys.instance_type`` on Windows, from the registry's BIOS key."""
    from . import windows_registry

    dmi = windows_registry.dmi(windows_registry.WinRegistry())
    ctx.details["dmi"] = shareable(dmi)
    return classify(dmi)
