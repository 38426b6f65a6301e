using System.ComponentModel.DataAnnotations;

namespace Tracker.ApiService.Http;

/// <summary>Request body limits; a larger body is answered 413 before it is read.</summary>
public sealed class RequestLimitsOptions
{
    public const string SectionName = "RequestLimits";

    /// <summary>Default limit for every endpoint: 64 KiB.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Limit for endpoints that take many items in one body (the log batch): 1 MiB.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public long MaxBatchRequestBodyBytes { get; set; } = 1024 * 1024;
}
