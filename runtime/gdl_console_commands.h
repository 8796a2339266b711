/*
 * gdl_console_commands.h: the console's commands, one list. The console
 * (gdl_console.c) expands it into its dispatch table and "help";
 * gdlua-console into its man page.
 *
 * X(name, args, min_args, max_args, run, help): the arguments after the
 * name (max -1: no limit); run is gdl_console.c's function, ARGS_MAX its
 * limit of words on a line.
 */
#ifndef GDL_CONSOLE_COMMANDS_H
#define GDL_CONSOLE_COMMANDS_H

#define GDL_CONSOLE_COMMANDS(X)                                                                                    \
    X("status", "", 0, 0, cmd_status, "one line per job: name, min, max, current processes, last run, last error") \
    X("show", "JOB", 1, 1, cmd_show, "the status line of JOB, then one pid a line")                                \
    X("set_min_processes", "JOB N", 2, 2, cmd_set_min, "set JOB's min_processes; takes effect at once")            \
    X("set_max_processes", "JOB N", 2, 2, cmd_set_max, "set JOB's max_processes; surplus idle processes stop")     \
    X("set_processes", "JOB MIN MAX", 3, 3, cmd_set_both, "set both")                                              \
    X("kill", "PID...", 1, ARGS_MAX - 1, cmd_kill, "stop these processes after their current job")                 \
    X("killall", "JOB...|*", 0, ARGS_MAX - 1, cmd_killall, "stop every process of these jobs (* for all)")         \
    X("reload", "", 0, 0, cmd_reload, "load the job modules again, as SIGHUP does; answers once loaded or failed") \
    X("stats", "", 0, 0, cmd_stats,                                                                                \
      "per job: processes, busy, jobs done and failed, last run and error, mean and p99 ms")                       \
    X("json", "", 0, 0, cmd_json, "status and stats as one JSON document")                                         \
    X("version", "", 0, 0, cmd_version, "gdlua's version")                                                         \
    X("help", "", 0, 0, cmd_help, "this list")                                                                     \
    X("auth", "TOKEN", 1, 1, cmd_auth, "authenticate (when gdlua runs with --console_token)")                      \
    X("quit", "", 0, 0, cmd_quit, "close this connection (no reply)")                                              \
    X("shutdown", "", 0, 0, cmd_shutdown, "stop gdlua as SIGTERM does (no reply)")

#endif
