package org.ovirt.engine.core.di;

import java.lang.reflect.Field;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import javax.inject.Inject;

/**
 * Stand-in for Engine's di.Injector, which asks the CDI container (Weld in
 * WildFly) for beans.  There is no container here: the harness registers
 * the objects it built (DAO proxies, the stand-in ResourceManager...) with
 * {@link #register}, and injectMembers fills each @Inject field whose type
 * was registered, as CDI would; fields of other types stay null.
 * Engine calls it on new VmManager (ResourceManager.getVmManager) and
 * AuditLogableBase (VmAnalyzer's audit logs).
 */
public class Injector {

    private static final Map<Class<?>, Object> beans = new ConcurrentHashMap<>();

    public static <T> void register(Class<T> type, T bean) {
        beans.put(type, bean);
    }

    public static <T> T injectMembers(T instance) {
        for (Class<?> c = instance.getClass(); c != null; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                Object bean = beans.get(f.getType());
                if (bean != null && f.isAnnotationPresent(Inject.class)) {
                    try {
                        f.setAccessible(true);
                        f.set(instance, bean);
                    } catch (IllegalAccessException e) {
                        throw new IllegalStateException(e);
                    }
                }
            }
        }
        return instance;
    }

    public static <T> T get(Class<T> clazz) {
        Object bean = beans.get(clazz);
        if (bean == null) {
            throw new IllegalStateException("no bean registered for " + clazz);
        }
        return clazz.cast(bean);
    }
}
