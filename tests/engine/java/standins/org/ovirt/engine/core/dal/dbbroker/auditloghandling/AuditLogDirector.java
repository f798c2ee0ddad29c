package org.ovirt.engine.core.dal.dbbroker.auditloghandling;

import java.util.ArrayList;
import java.util.List;

import org.ovirt.engine.core.common.AuditLogType;

/**
 * Stand-in for Engine's AuditLogDirector, which saves to the audit_log
 * table (AuditLogDao) through the flood regulator: here each log call is
 * recorded, by AuditLogType, for the harness to report (e.g. VmAnalyzer's
 * VM_DOWN_ERROR); the audit log's text resources are not read.
 */
public class AuditLogDirector {

    private final List<AuditLogType> logged = new ArrayList<>();

    public void log(AuditLogable auditLogable, AuditLogType logType) {
        log(auditLogable, logType, "", false);
    }

    public void log(AuditLogable auditLogable, AuditLogType logType, String message) {
        log(auditLogable, logType, message, false);
    }

    public void log(AuditLogable auditLogable, AuditLogType logType, String message, boolean ignoreTimeout) {
        synchronized (logged) {
            logged.add(logType);
        }
    }

    /** The types logged since the last call (harness only). */
    public List<AuditLogType> drain() {
        synchronized (logged) {
            List<AuditLogType> out = new ArrayList<>(logged);
            logged.clear();
            return out;
        }
    }
}
