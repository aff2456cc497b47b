/*
 * Independent C declaration of the netmap API 14 structures, written from
 * spec/netmap-abi.md §3 (NOT generated from the Rust code), in the way the
 * reference headers declare them: natural C padding, flexible array members,
 * `sem` aligned to 128 bytes. The integration test tests/c_layout.rs compares
 * every sizeof/alignof/offsetof below, and the ioctl numbers computed by the
 * system's _IO/_IOWR macros, with the Rust definitions.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#ifdef __linux__
#include <sys/ioctl.h>
#endif

struct netmap_slot {
	uint32_t buf_idx;
	uint16_t len;
	uint16_t flags;
	uint64_t ptr;
};

struct netmap_ring {
	int64_t buf_ofs;
	uint32_t num_slots;
	uint32_t nr_buf_size;
	uint16_t ringid;
	uint16_t dir;
	uint32_t head;
	uint32_t cur;
	uint32_t tail;
	uint32_t flags;
	struct timeval ts;
	uint64_t offset_mask;
	uint64_t buf_align;
	uint8_t sem[128] __attribute__((__aligned__(128)));
	struct netmap_slot slot[];
};

struct netmap_if {
	char ni_name[16];
	uint32_t ni_version;
	uint32_t ni_flags;
	uint32_t ni_tx_rings;
	uint32_t ni_rx_rings;
	uint32_t ni_bufs_head;
	uint32_t ni_host_tx_rings;
	uint32_t ni_host_rx_rings;
	uint32_t ni_spare1[3];
	int64_t ring_ofs[]; /* ssize_t */
};

struct nmreq_header {
	uint16_t nr_version;
	uint16_t nr_reqtype;
	uint32_t nr_reserved;
	char nr_name[64];
	uint64_t nr_options;
	uint64_t nr_body;
};

struct nmreq_register {
	uint64_t nr_offset;
	uint64_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_host_tx_rings;
	uint16_t nr_host_rx_rings;
	uint16_t nr_mem_id;
	uint16_t nr_ringid;
	uint32_t nr_mode;
	uint32_t nr_extra_bufs;
	uint64_t nr_flags;
};

struct nmreq_port_info_get {
	uint64_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_host_tx_rings;
	uint16_t nr_host_rx_rings;
	uint16_t nr_mem_id;
	uint16_t pad[3];
};

struct nmreq_vale_attach {
	struct nmreq_register reg;
	uint32_t port_index;
	uint32_t pad1;
};

struct nmreq_vale_detach {
	uint32_t port_index;
	uint32_t pad1;
};

struct nmreq_vale_list {
	uint16_t nr_bridge_idx;
	uint16_t pad1;
	uint32_t nr_port_idx;
};

struct nmreq_port_hdr {
	uint32_t nr_hdr_len;
	uint32_t pad1;
};

struct nmreq_vale_newif {
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_mem_id;
	uint16_t pad1;
};

struct nmreq_vale_polling {
	uint32_t nr_mode;
	uint32_t nr_first_cpu_id;
	uint32_t nr_num_polling_cpus;
	uint32_t pad1;
};

struct nmreq_pools_info {
	uint64_t nr_memsize;
	uint16_t nr_mem_id;
	uint16_t pad1[3];
	uint64_t nr_if_pool_offset;
	uint32_t nr_if_pool_objtotal;
	uint32_t nr_if_pool_objsize;
	uint64_t nr_ring_pool_offset;
	uint32_t nr_ring_pool_objtotal;
	uint32_t nr_ring_pool_objsize;
	uint64_t nr_buf_pool_offset;
	uint32_t nr_buf_pool_objtotal;
	uint32_t nr_buf_pool_objsize;
};

struct nmreq_sync_kloop_start {
	uint32_t sleep_us;
	uint32_t pad1;
};

struct nm_csb_atok {
	uint32_t head;
	uint32_t cur;
	uint32_t appl_need_kick;
	uint32_t sync_flags;
	uint32_t pad[12];
};

struct nm_csb_ktoa {
	uint32_t hwcur;
	uint32_t hwtail;
	uint32_t kern_need_kick;
	uint32_t pad[13];
};

struct nmreq_option {
	uint64_t nro_next;
	uint32_t nro_reqtype;
	uint32_t nro_status;
	uint64_t nro_size;
};

struct nmreq_opt_extmem {
	struct nmreq_option nro_opt;
	uint64_t nro_usrptr;
	struct nmreq_pools_info nro_info;
};

struct nmreq_opt_csb {
	struct nmreq_option nro_opt;
	uint64_t csb_atok;
	uint64_t csb_ktoa;
};

struct nmreq_opt_sync_kloop_mode {
	struct nmreq_option nro_opt;
	uint32_t mode;
};

struct nmreq_opt_sync_kloop_eventfds {
	struct nmreq_option nro_opt;
	struct {
		int32_t ioeventfd;
		int32_t irqfd;
	} eventfds[];
};

struct nmreq_opt_offsets {
	struct nmreq_option nro_opt;
	uint64_t nro_max_offset;
	uint64_t nro_initial_offset;
	uint32_t nro_offset_bits;
	uint32_t nro_tx_align;
	uint64_t nro_min_gap;
};

struct nmreq {
	char nr_name[16];
	uint32_t nr_version;
	uint32_t nr_offset;
	uint32_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_ringid;
	uint16_t nr_cmd;
	uint16_t nr_arg1;
	uint16_t nr_arg2;
	uint32_t nr_arg3;
	uint32_t nr_flags;
	uint32_t spare2[1];
};

struct nm_ifreq {
	char nifr_name[16];
	char data[256];
};

struct nm_layout_entry {
	char name[64];
	uint64_t value;
};

#define SZ(s) { "sizeof " #s, sizeof(struct s) }, { "alignof " #s, _Alignof(struct s) }
#define OFF(s, f) { #s "." #f, offsetof(struct s, f) }

static const struct nm_layout_entry nm_layout[] = {
	{ "sizeof timeval", sizeof(struct timeval) },
	{ "alignof timeval", _Alignof(struct timeval) },
	{ "timeval.tv_sec", offsetof(struct timeval, tv_sec) },
	{ "timeval.tv_usec", offsetof(struct timeval, tv_usec) },

	SZ(netmap_slot),
	OFF(netmap_slot, buf_idx), OFF(netmap_slot, len), OFF(netmap_slot, flags),
	OFF(netmap_slot, ptr),

	SZ(netmap_ring),
	OFF(netmap_ring, buf_ofs), OFF(netmap_ring, num_slots),
	OFF(netmap_ring, nr_buf_size), OFF(netmap_ring, ringid), OFF(netmap_ring, dir),
	OFF(netmap_ring, head), OFF(netmap_ring, cur), OFF(netmap_ring, tail),
	OFF(netmap_ring, flags), OFF(netmap_ring, ts), OFF(netmap_ring, offset_mask),
	OFF(netmap_ring, buf_align), OFF(netmap_ring, sem), OFF(netmap_ring, slot),

	SZ(netmap_if),
	OFF(netmap_if, ni_name), OFF(netmap_if, ni_version), OFF(netmap_if, ni_flags),
	OFF(netmap_if, ni_tx_rings), OFF(netmap_if, ni_rx_rings),
	OFF(netmap_if, ni_bufs_head), OFF(netmap_if, ni_host_tx_rings),
	OFF(netmap_if, ni_host_rx_rings), OFF(netmap_if, ni_spare1),
	OFF(netmap_if, ring_ofs),

	SZ(nmreq_header),
	OFF(nmreq_header, nr_version), OFF(nmreq_header, nr_reqtype),
	OFF(nmreq_header, nr_reserved), OFF(nmreq_header, nr_name),
	OFF(nmreq_header, nr_options), OFF(nmreq_header, nr_body),

	SZ(nmreq_register),
	OFF(nmreq_register, nr_offset), OFF(nmreq_register, nr_memsize),
	OFF(nmreq_register, nr_tx_slots), OFF(nmreq_register, nr_rx_slots),
	OFF(nmreq_register, nr_tx_rings), OFF(nmreq_register, nr_rx_rings),
	OFF(nmreq_register, nr_host_tx_rings), OFF(nmreq_register, nr_host_rx_rings),
	OFF(nmreq_register, nr_mem_id), OFF(nmreq_register, nr_ringid),
	OFF(nmreq_register, nr_mode), OFF(nmreq_register, nr_extra_bufs),
	OFF(nmreq_register, nr_flags),

	SZ(nmreq_port_info_get),
	OFF(nmreq_port_info_get, nr_memsize), OFF(nmreq_port_info_get, nr_tx_slots),
	OFF(nmreq_port_info_get, nr_rx_slots), OFF(nmreq_port_info_get, nr_tx_rings),
	OFF(nmreq_port_info_get, nr_rx_rings),
	OFF(nmreq_port_info_get, nr_host_tx_rings),
	OFF(nmreq_port_info_get, nr_host_rx_rings),
	OFF(nmreq_port_info_get, nr_mem_id), OFF(nmreq_port_info_get, pad),

	SZ(nmreq_vale_attach),
	OFF(nmreq_vale_attach, reg), OFF(nmreq_vale_attach, port_index),
	OFF(nmreq_vale_attach, pad1),

	SZ(nmreq_vale_detach),
	OFF(nmreq_vale_detach, port_index), OFF(nmreq_vale_detach, pad1),

	SZ(nmreq_vale_list),
	OFF(nmreq_vale_list, nr_bridge_idx), OFF(nmreq_vale_list, pad1),
	OFF(nmreq_vale_list, nr_port_idx),

	SZ(nmreq_port_hdr),
	OFF(nmreq_port_hdr, nr_hdr_len), OFF(nmreq_port_hdr, pad1),

	SZ(nmreq_vale_newif),
	OFF(nmreq_vale_newif, nr_tx_slots), OFF(nmreq_vale_newif, nr_rx_slots),
	OFF(nmreq_vale_newif, nr_tx_rings), OFF(nmreq_vale_newif, nr_rx_rings),
	OFF(nmreq_vale_newif, nr_mem_id), OFF(nmreq_vale_newif, pad1),

	SZ(nmreq_vale_polling),
	OFF(nmreq_vale_polling, nr_mode), OFF(nmreq_vale_polling, nr_first_cpu_id),
	OFF(nmreq_vale_polling, nr_num_polling_cpus), OFF(nmreq_vale_polling, pad1),

	SZ(nmreq_pools_info),
	OFF(nmreq_pools_info, nr_memsize), OFF(nmreq_pools_info, nr_mem_id),
	OFF(nmreq_pools_info, pad1), OFF(nmreq_pools_info, nr_if_pool_offset),
	OFF(nmreq_pools_info, nr_if_pool_objtotal),
	OFF(nmreq_pools_info, nr_if_pool_objsize),
	OFF(nmreq_pools_info, nr_ring_pool_offset),
	OFF(nmreq_pools_info, nr_ring_pool_objtotal),
	OFF(nmreq_pools_info, nr_ring_pool_objsize),
	OFF(nmreq_pools_info, nr_buf_pool_offset),
	OFF(nmreq_pools_info, nr_buf_pool_objtotal),
	OFF(nmreq_pools_info, nr_buf_pool_objsize),

	SZ(nmreq_sync_kloop_start),
	OFF(nmreq_sync_kloop_start, sleep_us), OFF(nmreq_sync_kloop_start, pad1),

	SZ(nm_csb_atok),
	OFF(nm_csb_atok, head), OFF(nm_csb_atok, cur), OFF(nm_csb_atok, appl_need_kick),
	OFF(nm_csb_atok, sync_flags), OFF(nm_csb_atok, pad),

	SZ(nm_csb_ktoa),
	OFF(nm_csb_ktoa, hwcur), OFF(nm_csb_ktoa, hwtail),
	OFF(nm_csb_ktoa, kern_need_kick), OFF(nm_csb_ktoa, pad),

	SZ(nmreq_option),
	OFF(nmreq_option, nro_next), OFF(nmreq_option, nro_reqtype),
	OFF(nmreq_option, nro_status), OFF(nmreq_option, nro_size),

	SZ(nmreq_opt_extmem),
	OFF(nmreq_opt_extmem, nro_opt), OFF(nmreq_opt_extmem, nro_usrptr),
	OFF(nmreq_opt_extmem, nro_info),

	SZ(nmreq_opt_csb),
	OFF(nmreq_opt_csb, nro_opt), OFF(nmreq_opt_csb, csb_atok),
	OFF(nmreq_opt_csb, csb_ktoa),

	SZ(nmreq_opt_sync_kloop_mode),
	OFF(nmreq_opt_sync_kloop_mode, nro_opt), OFF(nmreq_opt_sync_kloop_mode, mode),

	SZ(nmreq_opt_sync_kloop_eventfds),
	OFF(nmreq_opt_sync_kloop_eventfds, nro_opt),
	OFF(nmreq_opt_sync_kloop_eventfds, eventfds),
	{ "sizeof eventfds_entry",
	  sizeof(((struct nmreq_opt_sync_kloop_eventfds *)0)->eventfds[0]) },
	{ "eventfds_entry.ioeventfd",
	  offsetof(struct nmreq_opt_sync_kloop_eventfds, eventfds[0].ioeventfd) -
	  offsetof(struct nmreq_opt_sync_kloop_eventfds, eventfds) },
	{ "eventfds_entry.irqfd",
	  offsetof(struct nmreq_opt_sync_kloop_eventfds, eventfds[0].irqfd) -
	  offsetof(struct nmreq_opt_sync_kloop_eventfds, eventfds) },

	SZ(nmreq_opt_offsets),
	OFF(nmreq_opt_offsets, nro_opt), OFF(nmreq_opt_offsets, nro_max_offset),
	OFF(nmreq_opt_offsets, nro_initial_offset),
	OFF(nmreq_opt_offsets, nro_offset_bits), OFF(nmreq_opt_offsets, nro_tx_align),
	OFF(nmreq_opt_offsets, nro_min_gap),

	SZ(nmreq),
	OFF(nmreq, nr_name), OFF(nmreq, nr_version), OFF(nmreq, nr_offset),
	OFF(nmreq, nr_memsize), OFF(nmreq, nr_tx_slots), OFF(nmreq, nr_rx_slots),
	OFF(nmreq, nr_tx_rings), OFF(nmreq, nr_rx_rings), OFF(nmreq, nr_ringid),
	OFF(nmreq, nr_cmd), OFF(nmreq, nr_arg1), OFF(nmreq, nr_arg2),
	OFF(nmreq, nr_arg3), OFF(nmreq, nr_flags), OFF(nmreq, spare2),

	SZ(nm_ifreq),
	OFF(nm_ifreq, nifr_name), OFF(nm_ifreq, data),

#ifdef __linux__
	/* The reference header's ioctl definitions, with the system's macros. */
	{ "ioctl NIOCGINFO", (uint32_t)_IOWR('i', 145, struct nmreq) },
	{ "ioctl NIOCREGIF", (uint32_t)_IOWR('i', 146, struct nmreq) },
	{ "ioctl NIOCTXSYNC", (uint32_t)_IO('i', 148) },
	{ "ioctl NIOCRXSYNC", (uint32_t)_IO('i', 149) },
	{ "ioctl NIOCCONFIG", (uint32_t)_IOWR('i', 150, struct nm_ifreq) },
	{ "ioctl NIOCCTRL", (uint32_t)_IOWR('i', 151, struct nmreq_header) },
#endif
};

/* Number of entries of the table. */
size_t
netmap_uapi_layout_count(void)
{
	return sizeof(nm_layout) / sizeof(nm_layout[0]);
}

/*
 * Copies entry `i` into `*out` (name NUL-terminated in 64 bytes).
 * Returns 0, or -1 if `i` is out of range.
 */
int
netmap_uapi_layout_entry(size_t i, struct nm_layout_entry *out)
{
	if (i >= netmap_uapi_layout_count())
		return -1;
	memcpy(out, &nm_layout[i], sizeof(*out));
	return 0;
}
