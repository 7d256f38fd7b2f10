kt models
