#include <rte_config.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include "rvs_wrappers.h"

uint16_t rvs_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t rvs_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }
struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void rvs_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void rvs_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n) { rte_pktmbuf_free_bulk(mbufs, n); }
char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
unsigned int rvs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n, unsigned int *free_space)
{ return rte_ring_enqueue_burst(r, objs, n, free_space); }
unsigned int rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n, unsigned int *available)
{ return rte_ring_dequeue_burst(r, objs, n, available); }
unsigned int rvs_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
int rvs_errno(void) { return rte_errno; }
unsigned int rvs_lcore_id(void) { return rte_lcore_id(); }
uint64_t rvs_rdtsc(void) { return rte_rdtsc(); }
uint64_t rvs_get_tsc_hz(void) { return rte_get_tsc_hz(); }
unsigned int rvs_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
uint64_t rvs_rss_hf_ip_tcp_udp(void) { return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP; }
uint64_t rvs_rx_offload_l4_cksum(void) { return RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM; }
