"""SNMP object identifiers the drivers read, as dotted text (what `SnmpClient` takes).

Every OID here is from a public MIB (poly-device-apis.md section 3) unless marked MODELED; the
modeled sysObjectID table lives in `inventory.catalog` because the simulator shares it.
"""

from __future__ import annotations

from inventory.catalog import POLYCOM_ENTERPRISE_OID

# MIB-II system group (SNMPv2-MIB) [R]
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

# POLYCOM-ENDPOINT-MIB (polycom 101) [R: librenms mibs/polycom/POLYCOM-ENDPOINT-MIB]
_ENDPOINT = f"{POLYCOM_ENTERPRISE_OID}.101.1"
IDENTITY_SOFTWARE_INFO = f"{_ENDPOINT}.1.1.0"
IDENTITY_DEVICE_MODEL = f"{_ENDPOINT}.1.4.0"
IDENTITY_DEVICE_SERIAL_NUMBER = f"{_ENDPOINT}.1.5.0"
HARDWARE_NIC_MAC_COLUMN = f"{_ENDPOINT}.3.10.2.1.3"
"""hardwareNICNICsMAC, a table column: walk it (one row per NIC)."""

ENDPOINT_IDENTITY = (
    IDENTITY_DEVICE_SERIAL_NUMBER,
    IDENTITY_DEVICE_MODEL,
    IDENTITY_SOFTWARE_INFO,
)

# DMA cluster license table [R: centreon dma/snmp/mode/clusters.pm]
_DMA_LICENSE_ENTRY = f"{POLYCOM_ENTERPRISE_OID}.13.2.2.3.3.1"
ST_LIC_CLUSTER_NAME = f"{_DMA_LICENSE_ENTRY}.2"
ST_LIC_LICENSE_STATUS = f"{_DMA_LICENSE_ENTRY}.3"

# RPRM license scalars [R: centreon rprm/snmp/mode/license.pm]
SERVICE_LICENSE_CAPABILITY = f"{POLYCOM_ENTERPRISE_OID}.102.1.2.20.1.0"
SERVICE_LICENSE_USAGE = f"{POLYCOM_ENTERPRISE_OID}.102.1.2.20.2.0"

SYSTEM_GROUP = (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME)
