using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Validates the nested limits, which data-annotation validation of the options class does not reach, and
/// names each bad setting (<c>RateLimiting:Ingest:TokensPerSecond</c>).
/// </summary>
internal sealed class RateLimitingOptionsValidator : IValidateOptions<RateLimitingOptions>
{
    public ValidateOptionsResult Validate(string? name, RateLimitingOptions options)
    {
        var failures = new List<string>();
        Check(options.Auth, nameof(options.Auth), failures);
        Check(options.AuthFailures, nameof(options.AuthFailures), failures);
        Check(options.Usage, nameof(options.Usage), failures);
        Check(options.Ingest, nameof(options.Ingest), failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Check(object limit, string section, List<string> failures)
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(limit, new ValidationContext(limit), results, validateAllProperties: true))
        {
            failures.AddRange(results.Select(result =>
                $"{RateLimitingOptions.SectionName}:{section}:{string.Join(',', result.MemberNames)}: {result.ErrorMessage}"));
        }
    }
}
