package org.infinispan.manager;

import org.infinispan.Cache;

/** Stand-in for Infinispan's CacheContainer: the type CacheManager injects. */
public interface CacheContainer {
    <K, V> Cache<K, V> getCache(String name);
}
