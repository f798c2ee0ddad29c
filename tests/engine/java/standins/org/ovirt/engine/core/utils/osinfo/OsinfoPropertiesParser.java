package org.ovirt.engine.core.utils.osinfo;

/**
 * Stand-in for Engine's OsinfoPropertiesParser, which runs the parser
 * javacc generates from osinfo.jj (a build step; the generated class is not
 * in the source snapshot) to reject a malformed osinfo file.  The file read
 * here is Engine's own shipped osinfo-defaults.properties, so there is
 * nothing to reject: OsInfoPreferencesLoader then loads it with
 * java.util.Properties, as in Engine.
 */
public class OsinfoPropertiesParser {

    private OsinfoPropertiesParser() {
    }

    public static void parse(String path) {
    }
}
