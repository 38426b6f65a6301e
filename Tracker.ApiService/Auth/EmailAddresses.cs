using System.Net.Mail;

namespace Tracker.ApiService.Auth;

/// <summary>Email rules shared by registration, login and every answer that shows an address.</summary>
public static class EmailAddresses
{
    public const int MaxLength = 254;

    /// <summary>Emails are unique and compared lower-cased; they are stored as typed.</summary>
    public static string Normalize(string email) => email.Trim().ToLowerInvariant();

    /// <summary>A bare address (no display name, no spaces) of at most 254 characters with a dotted domain.</summary>
    public static bool IsValid(string email) =>
        email.Length <= MaxLength
        && !email.Any(char.IsWhiteSpace)
        && MailAddress.TryCreate(email, out var address)
        && address.Address == email
        && address.User.Length <= 64
        && address.Host.Contains('.', StringComparison.Ordinal)
        && !address.Host.EndsWith('.');

    /// <summary>
    /// First character of the local part, then one <c>*</c> per remaining character, then <c>@domain</c>;
    /// a one-character local part is masked whole (<c>z@x.org</c> → <c>*@x.org</c>) so nothing of it shows.
    /// </summary>
    public static string Mask(string email)
    {
        var at = email.LastIndexOf('@');
        if (at <= 0)
        {
            return new string('*', email.Length);
        }

        var local = email[..at];
        var masked = local.Length == 1 ? "*" : local[0] + new string('*', local.Length - 1);
        return masked + email[at..];
    }
}
