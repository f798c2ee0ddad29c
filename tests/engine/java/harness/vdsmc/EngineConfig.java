package vdsmc;

import java.io.InputStream;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.ovirt.engine.core.common.businessentities.VdcOption;
import org.ovirt.engine.core.common.config.Config;
import org.ovirt.engine.core.common.config.ConfigValues;
import org.ovirt.engine.core.common.config.OptionBehaviour;
import org.ovirt.engine.core.common.config.OptionBehaviourAttribute;
import org.ovirt.engine.core.dal.dbbroker.generic.DBConfigUtils;
import org.ovirt.engine.core.dao.VdcOptionDao;
import org.ovirt.engine.core.di.Injector;

/**
 * Engine's Config as a fresh Engine holds it: the vdc_options rows that
 * packaging/dbscripts/upgrade/pre_upgrade/0000_config.sql writes (the
 * shipped values, copied next to the classes by the build), plus what an
 * admin set with engine-config (e.g. UserDefinedVMProperties, as the
 * project's contrib/engine-config tool writes it), read and typed by
 * Engine's own DBConfigUtils (its VdcOptionDao is the only thing faked).
 *
 * The SQL is read for its config calls only: fn_db_add_config_value adds a
 * row if absent, fn_db_update_config_value sets one, the _for_versions_*
 * forms do so for each cluster level in their range,
 * fn_db_update_default_config_value replaces a still-default value,
 * fn_db_rename_config_key renames.  Table and column changes are ignored.
 */
final class EngineConfig {

    static final String[] LEVELS = { "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8" };
    private static final Pattern CALL = Pattern.compile(
            "fn_db_(add_config_value|update_config_value|add_config_value_for_versions_up_to|"
                    + "update_config_value_for_versions_from_up_to|update_default_config_value|"
                    + "rename_config_key)\\s*\\(");

    /** name -> version -> value, in the order the SQL set them. */
    private final Map<String, Map<String, String>> rows = new LinkedHashMap<>();
    private final DBConfigUtils utils = new DBConfigUtils();

    EngineConfig() throws Exception {
        try (InputStream in = EngineConfig.class.getResourceAsStream("/vdsmc-data/0000_config.sql")) {
            read(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        Injector.register(VdcOptionDao.class, Daos.proxy(VdcOptionDao.class, (name, args) ->
                "getAll".equals(name) ? options() : Daos.NONE));
        Injector.injectMembers(utils);
        utils.refresh();
        Config.setConfigUtils(utils);
    }

    /** engine-config -s name=value [--cver=version]; null version: all. */
    void set(String name, String value, String version) {
        Map<String, String> byVersion = rows.computeIfAbsent(name, k -> new LinkedHashMap<>());
        if (version != null) {
            byVersion.put(version, value);
        } else if (byVersion.isEmpty()) {
            byVersion.put("general", value);
        } else {
            byVersion.replaceAll((v, old) -> value);
        }
        utils.refresh();
    }

    private List<VdcOption> options() {
        List<VdcOption> out = new ArrayList<>();
        rows.forEach((name, byVersion) -> byVersion.forEach((version, value) -> {
            if (!known(name)) {
                return;
            }
            VdcOption o = new VdcOption();
            o.setOptionName(name);
            o.setOptionValue(value);
            o.setVersion(version);
            out.add(o);
        }));
        return out;
    }

    /**
     * A ConfigValues option that is not a password: rows of removed options
     * would only be warned about, and Password ones are decrypted with the
     * engine's PKI (EngineEncryptionUtils), absent here; none is read by the
     * code the tests run.
     */
    private static boolean known(String name) {
        try {
            Field f = ConfigValues.class.getField(name);
            OptionBehaviourAttribute b = f.getAnnotation(OptionBehaviourAttribute.class);
            return b == null || b.behaviour() != OptionBehaviour.Password;
        } catch (NoSuchFieldException e) {
            return false;
        }
    }

    /** The quoted arguments from {@code at} to the closing parenthesis. */
    private static List<String> args(String sql, int at) {
        List<String> out = new ArrayList<>();
        StringBuilder word = null;
        for (int i = at; i < sql.length(); i++) {
            char c = sql.charAt(i);
            if (word != null) {
                if (c == '\'' && i + 1 < sql.length() && sql.charAt(i + 1) == '\'') {
                    word.append(c);
                    i++;
                } else if (c == '\'') {
                    out.add(word.toString());
                    word = null;
                } else {
                    word.append(c);
                }
            } else if (c == '\'') {
                word = new StringBuilder();
            } else if (c == ')') {
                break;
            }
        }
        return out;
    }

    private void read(String sql) {
        Matcher m = CALL.matcher(sql);
        while (m.find()) {
            List<String> a = args(sql, m.end());
            if (a.size() < 3) {
                continue;       // not a call with literal arguments
            }
            Map<String, String> byVersion = rows.computeIfAbsent(a.get(0), k -> new LinkedHashMap<>());
            switch (m.group(1)) {
            case "add_config_value":
                byVersion.putIfAbsent(a.get(2), a.get(1));
                break;
            case "update_config_value":
                byVersion.put(a.get(2), a.get(1));
                break;
            case "add_config_value_for_versions_up_to":
                for (String level : LEVELS) {
                    if (level.compareTo(a.get(2)) <= 0) {
                        byVersion.putIfAbsent(level, a.get(1));
                    }
                }
                break;
            case "update_config_value_for_versions_from_up_to":
                for (String level : LEVELS) {
                    if (level.compareTo(a.get(2)) >= 0 && level.compareTo(a.get(3)) <= 0) {
                        byVersion.put(level, a.get(1));
                    }
                }
                break;
            case "update_default_config_value":
                if (a.get(1).equals(byVersion.get(a.get(3)))) {
                    byVersion.put(a.get(3), a.get(2));
                }
                break;
            default: // rename_config_key(old, new, version)
                Map<String, String> old = rows.remove(a.get(0));
                if (old != null && !old.isEmpty()) {
                    rows.computeIfAbsent(a.get(1), k -> new LinkedHashMap<>()).putAll(old);
                }
            }
            if (byVersion.isEmpty()) {
                rows.remove(a.get(0), byVersion);
            }
        }
    }
}
