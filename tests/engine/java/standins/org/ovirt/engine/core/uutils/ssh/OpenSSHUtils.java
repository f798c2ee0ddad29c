package org.ovirt.engine.core.uutils.ssh;

import java.security.PublicKey;

/**
 * Stand-in for Engine's uutils.ssh.OpenSSHUtils, which is built on Apache
 * MINA sshd (not among the jars used here).  It is compiled in only because
 * EngineEncryptionUtils (reached from DBConfigUtils, for Password-typed
 * config values) and PKIResources name it; no code path the tests run
 * handles SSH keys, so each method says so if called.
 */
public class OpenSSHUtils {

    private OpenSSHUtils() {
    }

    private static UnsupportedOperationException none() {
        return new UnsupportedOperationException("no SSH key handling in the tests' Engine");
    }

    public static String getKeyString(final PublicKey key, String alias) {
        throw none();
    }

    public static String getKeyFingerprint(final PublicKey key, String digest) {
        throw none();
    }

    public static boolean checkKeyFingerprint(String expected, final PublicKey key) {
        throw none();
    }

    public static boolean isPublicKeyValid(String publicKey) {
        throw none();
    }

    public static boolean arePublicKeysValid(String publicKeys) {
        throw none();
    }
}
