// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* No programs: this object carries the shared map specs and the BTF of the
 * ABI types, from which the Go mirrors in core/abi are generated. */
#include "lib/maps.h"

/* Referenced so their BTF is emitted for bpf2go -type. */
struct hp_ctx abi_ctx __attribute__((unused));
struct hp_event abi_event __attribute__((unused));
struct hp_policy_key abi_policy_key __attribute__((unused));
struct hp_policy_val abi_policy_val __attribute__((unused));
struct hp_tunnel_key abi_tunnel_key __attribute__((unused));
struct hp_tunnel_val abi_tunnel_val __attribute__((unused));
enum hp_slot abi_slot __attribute__((unused));
enum hp_reason abi_reason __attribute__((unused));
enum hp_dir abi_dir __attribute__((unused));
enum hp_verdict abi_verdict __attribute__((unused));
struct hp_ct_entry_v2 abi_ct_entry_v2 __attribute__((unused));
enum hp_ct_status abi_ct_status __attribute__((unused));
enum hp_lb_algorithm abi_lb_algorithm __attribute__((unused));
enum hp_abi_const abi_const __attribute__((unused));
enum hp_bank_const abi_bank_const __attribute__((unused));
enum hp_tuple_flag abi_tuple_flag __attribute__((unused));
enum hp_ct_flag abi_ct_flag __attribute__((unused));
enum hp_metrics_const abi_metrics_const __attribute__((unused));
enum hp_parse_bit abi_parse_bit __attribute__((unused));
enum hp_lb_flag abi_lb_flag __attribute__((unused));
enum hp_maglev_const abi_maglev_const __attribute__((unused));
enum hp_nat_dir abi_nat_dir __attribute__((unused));
struct hp_nat4_key abi_nat4_key __attribute__((unused));
struct hp_nat4_entry abi_nat4_entry __attribute__((unused));
enum hp_event_const abi_event_const __attribute__((unused));
enum hp_event_type abi_event_type __attribute__((unused));
enum hp_monitor_flag abi_monitor_flag __attribute__((unused));
enum hp_config_flag abi_config_flag __attribute__((unused));
enum hp_mark_const abi_mark_const __attribute__((unused));
enum hp_identity abi_identity __attribute__((unused));
enum hp_policy_dir abi_policy_dir __attribute__((unused));
enum hp_ipcache_flag abi_ipcache_flag __attribute__((unused));

char __license[] SEC("license") = "Dual BSD/GPL";
