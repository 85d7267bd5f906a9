/* MC146818 CMOS real-time clock at ports 0x70-0x71: the host's UTC time, read-only. */
#ifndef VDI_HV_DEV_RTC_H
#define VDI_HV_DEV_RTC_H

struct vm;

/* Registers the RTC ports. Returns NULL with a log line on failure. */
struct rtc *rtc_create(struct vm *vm);
void rtc_free(struct rtc *rtc);

#endif
