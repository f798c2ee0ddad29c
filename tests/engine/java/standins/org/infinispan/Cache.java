package org.infinispan;

import java.util.concurrent.ConcurrentMap;

/**
 * Stand-in for Infinispan's Cache (not packaged in Debian): Engine's
 * dal.utils.CacheManager holds the "timeout-base" cache that
 * EventFloodRegulator (AuditLogDirector) calls putIfAbsent and
 * computeIfPresent on; CacheManager only needs the type and stop().
 */
public interface Cache<K, V> extends ConcurrentMap<K, V> {
    void stop();
}
