"""Clouds: the provider by what its firmware writes, and which firmware strings stay out of the snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_sysmetrics import collect, snapshot
from mlflow_sysmetrics.collectors import cloud
from tests.conftest import expected, fixture_root


@pytest.mark.parametrize(
    ("dmi", "expected"),
    [
        (
            {"sys_vendor": "Amazon EC2", "product_name": "p5.48xlarge"},
            {"sys.cloud": "aws", "sys.instance_type": "p5.48xlarge"},
        ),
        (
            {"sys_vendor": "Xen", "product_name": "HVM domU", "bios_version": "4.11.amazon"},
            {"sys.cloud": "aws"},
        ),
        ({"sys_vendor": "Google", "product_name": "Google Compute Engine"}, {"sys.cloud": "gcp"}),
        ({"sys_vendor": "Google", "product_name": "Eve", "bios_vendor": "coreboot"}, {}),  # a Chromebook
        (
            {"chassis_asset_tag": cloud.AZURE_ASSET_TAG, "sys_vendor": "Microsoft Corporation"},
            {"sys.cloud": "azure"},
        ),
        ({"chassis_asset_tag": "OracleCloud.com"}, {"sys.cloud": "oci"}),
        ({"sys_vendor": "Alibaba Cloud", "product_name": "Alibaba Cloud ECS"}, {"sys.cloud": "alibaba"}),
        ({"sys_vendor": "DigitalOcean", "product_name": "Droplet"}, {"sys.cloud": "digitalocean"}),
        ({"sys_vendor": "Hetzner", "product_name": "vServer"}, {"sys.cloud": "hetzner"}),
        (
            {"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"},
            {"sys.cloud": "openstack"},
        ),
        ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}, {}),  # local Hyper-V
        ({"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R750xa"}, {}),
    ],
)
def test_cloud_from_firmware(dmi: dict[str, str], expected: dict[str, str]) -> None:
    """Each provider by what its firmware writes; a workstation or a local VM is no cloud."""
    assert cloud.classify(dmi) == expected


def test_chromebook_is_no_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Chromebook's firmware says sys_vendor Google; only GCE says Google Compute Engine."""
    from tests.conftest import fixture_root

    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("chromebook")))
    tags = collect()
    assert "sys.cloud" not in tags
    assert tags["sys.cpu"] == expected("chromebook")["sys.cpu"]


def test_an_owners_asset_tag_stays_out_of_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workstation's inventory number is an identifier: not in tags, not in the snapshot."""
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Dell Inc.\n")
    (dmi / "chassis_asset_tag").write_text("IT-004512\n")
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(tmp_path))
    document = snapshot()
    assert document["dmi"] == {"sys_vendor": "Dell Inc."}
    assert "IT-004512" not in str(document)


def test_a_clouds_asset_tag_marker_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure writes one fixed asset tag on every VM: it names the cloud, not a machine."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("azure-vm")))
    document = snapshot()
    assert document["dmi"]["chassis_asset_tag"] == cloud.AZURE_ASSET_TAG
    assert document["tags"]["sys.cloud"] == expected("azure-vm")["sys.cloud"]
