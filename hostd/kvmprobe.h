/* Measures how fast KVM runs guest code here, so `accel = auto` picks KVM only
 * where it runs at hardware speed (on some machines /dev/kvm works but is
 * emulated ~1000x slower). Runs a counted loop in a one-page real-mode guest,
 * like tests/integration/test_hv_linux.py. Start-up only: it uses SIGALRM to
 * bound the measurement. */
#ifndef VDI_HOSTD_KVMPROBE_H
#define VDI_HOSTD_KVMPROBE_H

/* Guest loop iterations per second above which KVM counts as hardware speed. */
#define KVMPROBE_HARDWARE_LOOPS_PER_S 50e6

/* Returns the measured loop iterations per second (0 when the loop did not
 * finish in max_ms), or a negative errno when KVM cannot be used at all. */
double kvmprobe_loops_per_second(int max_ms);

#endif
