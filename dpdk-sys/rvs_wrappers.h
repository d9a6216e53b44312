#ifndef RVS_WRAPPERS_H
#define RVS_WRAPPERS_H
#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

/* Thin, non-inline re-exports of DPDK's static inline fast-path functions.
 * Each is one call per burst (or per allocation), never per byte. */
uint16_t rvs_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t rvs_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp);
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void rvs_pktmbuf_free(struct rte_mbuf *m);
void rvs_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);
char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
unsigned int rvs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n, unsigned int *free_space);
unsigned int rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n, unsigned int *available);
unsigned int rvs_ring_count(const struct rte_ring *r);
int rvs_errno(void);
unsigned int rvs_lcore_id(void);
uint64_t rvs_rdtsc(void);
uint64_t rvs_get_tsc_hz(void);
unsigned int rvs_mempool_avail_count(const struct rte_mempool *mp);

uint64_t rvs_rss_hf_ip_tcp_udp(void);
/* RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM (macros). */
uint64_t rvs_rx_offload_l4_cksum(void);
#endif
