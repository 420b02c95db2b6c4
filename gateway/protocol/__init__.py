"""What a client sees on the wire: OpenAI's request and response models (`openai`), and every
error in OpenAI's envelope (`errors`)."""
