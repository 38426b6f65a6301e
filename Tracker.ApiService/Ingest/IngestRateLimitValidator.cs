using Microsoft.Extensions.Options;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// The ingest rate limit counts logs, so a batch larger than the bucket's burst could never be paid for: such a
/// configuration stops the API at start, naming both settings, instead of refusing every maximum-size batch.
/// </summary>
internal sealed class IngestRateLimitValidator(IOptions<RateLimitingOptions> rateLimiting) : IValidateOptions<IngestOptions>
{
    public ValidateOptionsResult Validate(string? name, IngestOptions options)
    {
        var limits = rateLimiting.Value;
        return !limits.Enabled || options.MaxLogsPerBatchRequest <= limits.Ingest.BurstLimit
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"{IngestOptions.SectionName}:{nameof(IngestOptions.MaxLogsPerBatchRequest)} ({options.MaxLogsPerBatchRequest}) is more than "
                + $"{RateLimitingOptions.SectionName}:Ingest:{nameof(TokenBucketLimit.BurstLimit)} ({limits.Ingest.BurstLimit}): a batch that "
                + "large could never be paid for. Raise the burst or lower the batch size.");
    }
}
