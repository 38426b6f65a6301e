namespace Tracker.Data;

/// <summary>
/// Names in the day-partitioned <c>logs</c> table, created by SQL in the migrations. The ingest writer and the
/// partition maintenance refer to these instead of spelling the names again.
/// </summary>
public static class LogTable
{
    public const string Name = "logs";

    /// <summary>Creates the daily partitions covering [first, last] UTC days that do not exist yet.</summary>
    public const string EnsurePartitionsFunction = "ensure_log_partitions";

    /// <summary>Prefix of a daily partition's name, followed by its UTC day as yyyyMMdd.</summary>
    public const string PartitionPrefix = "logs_p";

    public const int EndpointMaxLength = 2048;

    public const int MethodMaxLength = 16;

    /// <summary>A client-chosen log id: 1 to 64 visible ASCII characters.</summary>
    public const int LogIdMaxLength = 64;

    /// <summary>The partial unique index on (client_id, log_id, occurred_at) that makes a retried log a duplicate.</summary>
    public const string LogIdIndex = "ux_logs_client_id_log_id_occurred_at";
}
