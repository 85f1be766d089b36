"""The Linux audit system as a tracer (tracer=auditd): rules (what is audited), records
(reading auditd's log), control (the kernel's audit state through auditctl), tracer."""
