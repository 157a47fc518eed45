using DeepSpeedSharp.Samples.Shared.Text;

namespace DeepSpeedSharp.Samples.Bert.Data;

/// <summary>
/// The BERT sample's ids: the text's compact GPT-2 vocabulary (<see cref="VocabularyMap"/>, ids 0 … n − 1, a
/// RoBERTa-style byte-level BPE) followed by BERT's four special ids [PAD] = n, [CLS] = n + 1, [SEP] = n + 2 and
/// [MASK] = n + 3, the whole padded up to a multiple of 8. Every sample is [CLS] w₁ … w_{T−2} [SEP]; [PAD] is reserved
/// (the samples are full windows of the text, so nothing is padded).
/// </summary>
public sealed class BertVocabulary
{
    /// <summary>The vocabulary is padded to a multiple of this.</summary>
    public const int PadMultiple = 8;

    /// <param name="text">The text's GPT-2 → model id map.</param>
    public BertVocabulary(VocabularyMap text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Text = text;
        TextIds = text.Count;
        PaddedSize = (TextIds + 4 + PadMultiple - 1) / PadMultiple * PadMultiple;
    }

    /// <summary>The text's GPT-2 → model id map.</summary>
    public VocabularyMap Text { get; }

    /// <summary>Ids of real tokens: [0, TextIds). The masking's random replacements are drawn from these.</summary>
    public int TextIds { get; }

    /// <summary>[PAD]: reserved, never in the data.</summary>
    public int Pad => TextIds;

    /// <summary>[CLS]: the first id of every sample.</summary>
    public int Cls => TextIds + 1;

    /// <summary>[SEP]: the last id of every sample.</summary>
    public int Sep => TextIds + 2;

    /// <summary>[MASK]: replaces 80% of the positions chosen for prediction.</summary>
    public int Mask => TextIds + 3;

    /// <summary>The model's vocabulary size: <see cref="TextIds"/> + 4 special ids, padded to a multiple of 8.</summary>
    public int PaddedSize { get; }

    /// <summary>For the log.</summary>
    public override string ToString() => $"{TextIds} text ids + [PAD] [CLS] [SEP] [MASK], padded to {PaddedSize}";
}
