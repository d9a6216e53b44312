/* Headers bindgen reads. Fast-path functions that DPDK defines `static
 * inline` are re-exported as real symbols by rvs_wrappers.c. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_thread.h>
#include <rte_telemetry.h>
#include <rte_malloc.h>
#include "rvs_wrappers.h"
